

@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(CODEC_NAMES), payload=st.binary(max_size=400))
def test_decoders_take_any_bytes(name: str, payload: bytes) -> None:
    """Every byte string from the network decodes to int16 PCM or raises CodecError only."""
    coder = make_codec(name)
    try:
        out = coder.decode(payload)
    except CodecError:
        return
    assert out.dtype == np.int16
    assert len(out) <= coder.info.sample_rate * 120 // 1000 * 2
