"""The async transfer engine: bounded requests, bounded memory, verified bytes.

It knows the back-end protocol and the format, never a concrete back-end, the
settings or the environment: the API layer builds a :class:`TransferConfig` and
an open back-end and hands them down.
"""
