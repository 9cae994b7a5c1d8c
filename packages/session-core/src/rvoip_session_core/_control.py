"""``SessionControl`` and ``MediaControl``: the seed's traits as classes of unbound methods.

``await SessionControl.hold_session(coordinator, sid)`` is exactly
``await coordinator.hold_session(sid)``: each attribute is the coordinator's function.
"""

from __future__ import annotations

from rvoip_session_core._coordinator import SessionCoordinator


class SessionControl:
    """Call control (the seed's ``SessionControl`` trait); call with the coordinator first."""

    start = SessionCoordinator.start
    stop = SessionCoordinator.stop
    create_outgoing_call = SessionCoordinator.create_outgoing_call
    prepare_outgoing_call = SessionCoordinator.prepare_outgoing_call
    initiate_prepared_call = SessionCoordinator.initiate_prepared_call
    wait_for_answer = SessionCoordinator.wait_for_answer
    accept_incoming_call = SessionCoordinator.accept_incoming_call
    reject_incoming_call = SessionCoordinator.reject_incoming_call
    send_early_media = SessionCoordinator.send_early_media
    hold_session = SessionCoordinator.hold_session
    resume_session = SessionCoordinator.resume_session
    refresh_session = SessionCoordinator.refresh_session
    send_dtmf = SessionCoordinator.send_dtmf
    send_message = SessionCoordinator.send_message
    transfer_session = SessionCoordinator.transfer_session
    transfer_attended = SessionCoordinator.transfer_attended
    update_media = SessionCoordinator.update_media
    terminate_session = SessionCoordinator.terminate_session
    get_session = SessionCoordinator.get_session
    list_active_sessions = SessionCoordinator.list_active_sessions
    get_stats = SessionCoordinator.get_stats
    subscribe = SessionCoordinator.subscribe
    watch_busy_lamp = SessionCoordinator.watch_busy_lamp
    watch_message_waiting = SessionCoordinator.watch_message_waiting
    play_prompt = SessionCoordinator.play_prompt
    collect_digits = SessionCoordinator.collect_digits
    start_recording = SessionCoordinator.start_recording
    stop_recording = SessionCoordinator.stop_recording


class MediaControl:
    """Media control (the seed's ``MediaControl`` trait); call with the coordinator first."""

    generate_sdp_offer = SessionCoordinator.generate_sdp_offer
    generate_sdp_answer = SessionCoordinator.generate_sdp_answer
    start_audio_transmission = SessionCoordinator.start_audio_transmission
    stop_audio_transmission = SessionCoordinator.stop_audio_transmission
    set_audio_source = SessionCoordinator.set_audio_source
    subscribe_to_audio_frames = SessionCoordinator.subscribe_to_audio_frames
    send_audio_frame = SessionCoordinator.send_audio_frame
    get_media_info = SessionCoordinator.get_media_info
    get_media_statistics = SessionCoordinator.get_media_statistics
