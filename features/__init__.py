"""Point-in-time features and the outcome, from a loaded linked-records extract.

Every feature is defined once in `features.registry` (computation, window, source, domain,
description, plain sentence); the same definitions build the feature table, the feature
dictionary and the explanation text.
"""

from features.build import (
    build_features,
    build_features_df,
    feature_table,
    features_sql,
    neighbourhood_labels,
)
from features.dates import FeatureError, check_index_date, index_dates
from features.definition import DOMAINS, Feature
from features.outcome import build_outcome, build_panel, build_panel_df, outcome_sql, panel_sql
from features.registry import FEATURES, feature, model_feature_names

__all__ = [
    "DOMAINS",
    "FEATURES",
    "Feature",
    "FeatureError",
    "build_features",
    "build_features_df",
    "build_outcome",
    "build_panel",
    "build_panel_df",
    "check_index_date",
    "feature",
    "feature_table",
    "features_sql",
    "index_dates",
    "model_feature_names",
    "neighbourhood_labels",
    "outcome_sql",
    "panel_sql",
]
