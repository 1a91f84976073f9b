"""Errors whose message is shown to the app's user as is, and the text for any other error."""
from __future__ import annotations


import torch

from ..errors import FstError

class AppError(FstError):
    """A problem with what the user asked for; the message is shown to them as is."""


class ColorizerUnavailable(AppError):
    """No trained colorizer is installed."""


def user_message(error: BaseException) -> str:
    """The message to show for ``error``: fst's own text, or a generic one (details go to the log)."""
    if isinstance(error, FstError):
        return str(error)
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return "The server ran out of memory for this image; choose a smaller output size and try again."
    return "Something went wrong while processing this request (the error was logged). Please try again."
