"""Equal-effort hyperparameter search (Optuna): search spaces, studies, tuned configs.

`SearchSpace` turns a model's ``conf/tune/<model>.yaml`` into Hydra overrides for one
Optuna trial; `run_study` runs (or resumes) one model's study in shared Optuna storage,
scoring each trial by closed-loop catch rate on *validation* games; `tuned_config` turns
the best trial into the ``conf/tuned/<model>.yaml`` that the table uses.
"""

from tnd.tuning.space import Param, SearchSpace, SearchSpaceError
from tnd.tuning.study import StudySettings, TuneError, open_study, run_study, study_summary, tuned_config

__all__ = [
    "Param", "SearchSpace", "SearchSpaceError", "StudySettings", "TuneError", "open_study", "run_study",
    "study_summary", "tuned_config",
]
