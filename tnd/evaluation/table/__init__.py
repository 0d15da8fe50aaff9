"""The Pong table: run folders -> one row per model or variant (mean and 95% CI over seeds) -> MD/CSV/PNG.

Data flow, one module per step::

    runs.collect_runs(root)            every run folder under ``root`` -> RunRecord
    aggregation.aggregate(records)     RunRecords -> Table (one TableRow per model, or per variant),
                                       with statistics.student_t_interval over seeds
    render.write_markdown / write_csv / plot_table

What is shown is declared once in ``columns`` (`Metric`: name, label, format, range,
direction; model labels; the paper's figures): adding a metric is one `Metric` line.

A *variant* is one combination of the values of the sweep's row keys (``keys``; the swept
keys but the seed). The Pong table's only row key is ``model`` (rows = models); an
ablation sweeps more keys (e.g. ``graph``, ``model.options.dynamics``), and every
combination is a row, labelled from its values (``layered_ncp · K=2 · leaky · scalar``)
and aggregated over seeds exactly like a model row. A run's value of a key is read from
the overrides in its ``run.json``, else from the spec recorded there (the model also from
the summary).

A *run folder* holds ``run.json`` (the run's description: its spec and overrides, written
when it starts, whoever started it; runs made before it existed have Hydra's ``.hydra/``
record instead) and, when it ended, either ``summary.json`` (success: model, seed, env and
the metrics below) or ``error.json`` (``{"error": message, ...}``). A folder with neither
is *unfinished* (killed or still running). A (model, seed) pair the sweep expects but no folder holds is
*missing*. Failed, unfinished and missing runs are listed and counted in every output,
never silently dropped.

Intervals are Student-t 95% confidence intervals over seeds: mean ± t_{0.975, n-1}·s/√n
with s the sample standard deviation; n = 1 leaves the interval undefined ("n/a").
The t quantile is ``scipy.stats.t.ppf``. The plots clip each interval to its metric's
physical range (`Metric.lower`/`upper`: a catch rate stays in [0, 1], counts and times
stay >= 0) and say so; the Markdown and CSV give the unclipped statistic.

Library code: plain paths and values in, files out; no Hydra objects.
"""

from tnd.evaluation.table.aggregation import (
    Table, TableRow, aggregate, choose_runs, model_order, variant_labels, variant_of,
)
from tnd.evaluation.table.columns import (
    KEY_LABELS,
    METRIC,
    METRIC_LABELS,
    METRICS,
    MODEL_KEY,
    MODEL_LABELS,
    PAPER,
    SEED_KEY,
    Metric,
    PublishedFigures,
)
from tnd.evaluation.table.render import (
    error_bars,
    format_interval,
    plot_table,
    plot_variants,
    render_markdown,
    write_csv,
    write_markdown,
)
from tnd.evaluation.table.runs import (
    RunRecord, RunRecordError, collect_runs, infer_row_keys, load_expert_summary, read_hydra_file, read_run, run_value,
)
from tnd.evaluation.table.statistics import Interval, TableError, student_t_interval, student_t_quantile
from tnd.run_folder import ERROR_FILE, EXPERT_FILE, STACKED_SEEDS_KEY, SUMMARY_FILE

__all__ = [
    "ERROR_FILE", "EXPERT_FILE", "KEY_LABELS", "METRIC", "METRICS", "METRIC_LABELS", "MODEL_KEY", "MODEL_LABELS",
    "PAPER", "SEED_KEY", "SUMMARY_FILE", "Interval", "Metric", "PublishedFigures", "RunRecord", "RunRecordError", "Table",
    "STACKED_SEEDS_KEY", "TableError", "TableRow", "aggregate", "choose_runs", "collect_runs", "error_bars", "format_interval", "infer_row_keys",
    "load_expert_summary", "model_order", "plot_table", "plot_variants", "read_hydra_file", "read_run", "render_markdown", "run_value",
    "student_t_interval", "student_t_quantile", "variant_labels", "variant_of", "write_csv", "write_markdown",
]
