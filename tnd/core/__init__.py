"""The TND core: input onto sensory neurons, inner rounds of interaction + dynamics, motor readout."""

from tnd.core.cell import PreparedCore, TNDCore, TNDCoreError

__all__ = ["PreparedCore", "TNDCore", "TNDCoreError"]
