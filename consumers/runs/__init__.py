"""What was seen of training runs, in bounded memory: curves, weight and gradient statistics, alerts.

The live dashboard (:mod:`trainsentry.consumers.ui`) and the postmortem report
(:mod:`trainsentry.consumers.report`) both fill a :class:`RunCollection` from protocol events.
"""

from .layer_stats import STATS, LayerStats, layer_stats
from .run_collection import RunCollection
from .series import DecimatedSeries
from .trial_record import Limits, SeriesKey, TrialRecord, alert_json, severity_of

__all__ = ["STATS", "DecimatedSeries", "LayerStats", "Limits", "RunCollection", "SeriesKey",
           "TrialRecord", "alert_json", "layer_stats", "severity_of"]
