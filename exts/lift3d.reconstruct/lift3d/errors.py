"""Error types shared by the library, the CLI and the Kit extension.

``InputError`` is the user's fault (a corrupt image, an empty mask, a bad
camera file, an unwritable output folder): the CLI prints its message as one
line on stderr and exits with status 2; the Kit extension shows the same text
as a notification. Anything else is a bug and keeps its traceback.
"""


class Lift3dError(Exception):
    """Base class of every error lift3d raises on purpose."""


class InputError(Lift3dError):
    """Bad input from the user; the message is one clear, complete sentence."""


class ConfigError(InputError):
    """A configuration file or override is invalid; the message names the key and the file."""


class Cancelled(Lift3dError):
    """The caller cancelled a running job (between optimisation steps)."""
