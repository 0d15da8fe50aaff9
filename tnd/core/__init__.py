"""The TND core: input onto sensory neurons, inner rounds of interaction + dynamics, motor readout."""

from tnd.core.cell import LatencyWarning, ProgramShape, TNDCore, TNDCoreError

__all__ = ["LatencyWarning", "ProgramShape", "TNDCore", "TNDCoreError"]
