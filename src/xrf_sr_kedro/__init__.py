"""xrf-sr-kedro: fly-scan-aware 4x super-resolution of XRF maps and tomograms.

Domain subpackages (``physics``, ``models``, ``training``, ``inference``, ``tomo``,
``metrics``, ``io``) import nothing from Kedro; ``datasets`` and ``pipelines`` wire
them into a Kedro project.
"""

__version__ = "0.1.0"
