"""The TND core: input onto sensory neurons, inner rounds of interaction + dynamics, motor readout."""

from tnd.core.cell import TNDCore, TNDCoreError

__all__ = ["TNDCore", "TNDCoreError"]
