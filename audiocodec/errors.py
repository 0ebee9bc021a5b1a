"""The one exception type the CLI turns into a clean one-line error."""


class CodecError(Exception):
    """A problem with the user's input (file, bytes, arguments), not a bug."""
