"""python-telegram-bot persistence on botstate.

>>> from botstate_ptb import BotstatePersistence
>>> application = (
...     Application.builder().token(TOKEN)
...     .persistence(BotstatePersistence("sqlite:///bot.db"))
...     .build()
... )

:class:`BotstatePersistence` keeps user/chat/bot data, callback data and
conversation states, one storage key per user, chat and conversation.
:class:`BotstateApplication` (``.application_class(BotstateApplication)``)
serialises each chat's updates across processes and writes through.
:func:`import_pickle` (``python -m botstate_ptb import-pickle``) moves a
``PicklePersistence`` file into a storage.
"""

from .__about__ import __version__
from .application import BotstateApplication
from .layout import Layout
from .migrate import import_pickle
from .persistence import BotstatePersistence
from .values import UnstorableValue

__all__ = [
    "BotstateApplication",
    "BotstatePersistence",
    "Layout",
    "UnstorableValue",
    "__version__",
    "import_pickle",
]
