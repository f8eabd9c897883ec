"""Running an audit: splits, arms, metrics, statistics, run folder."""
