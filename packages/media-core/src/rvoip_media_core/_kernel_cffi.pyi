# Type stub of the cffi-built kernel (see _kernel/kernel.h for the C signatures).
from typing import Any

ffi: Any
lib: Any
