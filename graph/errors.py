"""Domain errors raised while running a turn."""

from memory.errors import ThreadlineError


class ModelUnavailable(ThreadlineError):
    """The model failed (timeout, 429, connection refused) after bounded retries."""

    code = "model_unavailable"
