"""The reduced action set shared by every Pong environment and model head."""

STAY, UP, DOWN = 0, 1, 2
NUM_ACTIONS = 3
ACTION_NAMES = ("stay", "up", "down")
