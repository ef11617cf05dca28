"""The one exception type the kit raises for problems a user can fix."""


class FacesrError(Exception):
    """A user-facing error: one line that names the file or value and says what to do.

    The CLI prints it as ``error: <message>`` and exits with code 2; notebooks show it as is.
    """
