"""Views of a reconstruction: the versioned JSON document and pandas DataFrames.

Presentation only: these functions copy the model out, they decide nothing.
They read only :mod:`sipchain.model` types (and the reconstruction through its
attributes), so any layer may call them; :class:`sipchain.result.Reconstruction`
does, in ``to_json()`` and ``to_pandas()``.

* :func:`reconstruction_to_json` gives the JSON text described by
  ``docs/schema/reconstruction-<SCHEMA_VERSION>.json`` (see
  ``docs/schema/README.md``); the same reconstruction gives the same bytes.
* :func:`reconstruction_frames` gives the DataFrames ``messages``, ``legs``,
  ``links``, ``failovers``, ``chains`` and ``findings``, whose columns and
  dtypes are the constants of :mod:`sipchain.views._frames`.
"""

from sipchain.views._frames import reconstruction_frames
from sipchain.views._json import SCHEMA_VERSION, reconstruction_to_json

__all__ = ["SCHEMA_VERSION", "reconstruction_frames", "reconstruction_to_json"]
