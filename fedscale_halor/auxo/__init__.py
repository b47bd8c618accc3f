"""Auxo's cohort discovery (Liu et al., SoCC'23): clients are split into cohorts, each training its own model, from
their model updates alone (docs/auxo.md). The math: the per-client signal (signals.py), the reward table that decides
who belongs where and when a cohort splits (reward_table.py), the participants each cohort gets (shares.py) and the
settings (settings.py); the plug-in on the round pipeline (plugin.py, factory.py) and its saved signals
(signal_log.py); how well the cohorts fit planted label groups (outcome.py)."""
