"""One settings object for every command: defaults, then a TOML config file, then environment.

Precedence (highest first): environment variables `CASEFINDER_*` (nested with `__`, e.g.
`CASEFINDER_MLFLOW__REGISTERED_MODEL=...`), the config file, the defaults below.
The config file is `$CASEFINDER_CONFIG` if set, else `casefinder.toml` inside the home folder.

All working state (MLflow store, score store, audit log) lives under `home`, set by
`CASEFINDER_HOME`, so two runs can be kept apart by giving them different homes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, NonNegativeInt
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from records.contract import EMERGENCY_ADMISSION_METHODS, TABLES, Caseload

DEFAULT_HOME = Path(".casefinder")


def home_dir() -> Path:
    """The working-state folder: `$CASEFINDER_HOME`, else `./.casefinder`."""
    return Path(os.environ.get("CASEFINDER_HOME", DEFAULT_HOME)).expanduser()


def config_path() -> Path:
    """The config file read by `Settings`: `$CASEFINDER_CONFIG`, else `<home>/casefinder.toml`."""
    explicit = os.environ.get("CASEFINDER_CONFIG")
    return Path(explicit).expanduser() if explicit else home_dir() / "casefinder.toml"


class MlflowSettings(BaseModel):
    """Where runs and model versions are tracked."""

    # None means SQLite under home; MLFLOW_TRACKING_URI, when set, wins over both.
    tracking_uri: str | None = None
    experiment: str = "casefinder"
    registered_model: str = "casefinder-risk"


class OutcomeSettings(BaseModel):
    """The outcome definition (features stage). Defaults: the contract's default outcome.

    Within `window_months` from the index date D (records dated D up to the day before D +
    window), an agency is involved when any of its rules holds; the outcome is 1 when at least
    `min_agencies` agencies are involved, or any `always_counts` rule holds. A site may replace
    any part in its config file, e.g. `[outcome] min_agencies = 3`.
    """

    class Rule(BaseModel):
        """At least `min_count` rows of `table` dated in the window (by the table's record date)
        whose `column` is one of `values` and whose columns in `where` have one of the listed
        values."""

        model_config = {"extra": "forbid"}

        table: str
        column: str
        values: list[str] = Field(min_length=1)
        min_count: int = Field(1, ge=1)
        where: dict[str, list[str]] = Field(default_factory=dict)

        def model_post_init(self, context: object, /) -> None:
            table = TABLES.get(self.table)
            if table is None or table.date_column is None or table.name == "caseloads":
                raise ValueError(f"outcome rule: {self.table!r} is not a dated event table")
            for column, values in ((self.column, self.values), *self.where.items()):
                if column not in {c.name for c in table.columns}:
                    raise ValueError(f"outcome rule: {self.table} has no column {column!r}")
                allowed = table.column(column).allowed
                unknown = [v for v in values if allowed is not None and v not in allowed]
                if unknown:
                    raise ValueError(
                        f"outcome rule: {unknown} not among {self.table}.{column}'s values "
                        f"in the contract ({', '.join(allowed or ())})"
                    )

    model_config = {"extra": "forbid"}

    window_months: int = Field(12, ge=1, le=60)
    min_agencies: int = Field(2, ge=1)
    # Contract, "Default outcome": emergency admission methods 21-25, 2A-2D, 28.
    agencies: dict[str, list[Rule]] = Field(
        default_factory=lambda: {
            "acute_hospital": [
                OutcomeSettings.Rule(
                    table="hospital_spells",
                    column="admission_method",
                    values=list(EMERGENCY_ADMISSION_METHODS),
                )
            ],
            "community_health": [
                OutcomeSettings.Rule(
                    table="community_contacts", column="service", values=["intermediate_care"]
                ),
                OutcomeSettings.Rule(
                    table="community_contacts",
                    column="service",
                    values=["district_nursing", "community_matron"],
                    min_count=6,
                ),
            ],
            "adult_social_care": [
                OutcomeSettings.Rule(
                    table="social_care",
                    column="service_type",
                    values=[
                        "long_term_community",
                        "long_term_residential",
                        "long_term_nursing",
                        "short_term_reablement",
                        "direct_payment",
                    ],
                    where={"event_type": ["service"]},
                )
            ],
            "mental_health": [
                OutcomeSettings.Rule(
                    table="mental_health_contacts",
                    column="team_type",
                    values=["crisis", "older_adult_cmht"],
                )
            ],
        }
    )
    always_counts: list[Rule] = Field(
        default_factory=lambda: [
            OutcomeSettings.Rule(
                table="social_care",
                column="service_type",
                values=["long_term_residential", "long_term_nursing"],
                where={"event_type": ["service"]},
            )
        ]
    )

    def model_post_init(self, context: object, /) -> None:
        if not self.agencies:
            raise ValueError("outcome: at least one agency is needed")
        for name, rules in self.agencies.items():
            if not name.isidentifier() or name in ("person_id", "outcome"):
                raise ValueError(f"outcome: agency name {name!r} must be a plain identifier")
            if not rules:
                raise ValueError(f"outcome: agency {name!r} has no rules")
        if self.min_agencies > len(self.agencies):
            raise ValueError(
                f"outcome: min_agencies {self.min_agencies} is more than the "
                f"{len(self.agencies)} agencies defined"
            )

    @property
    def tables(self) -> list[str]:
        """The tables the outcome reads, in first-use order."""
        rules = [r for rs in self.agencies.values() for r in rs] + list(self.always_counts)
        return list(dict.fromkeys(r.table for r in rules))


class TrainingSettings(BaseModel):
    """Training, evaluation, fairness and the promotion gate (training stage)."""

    # Index dates: the latest `index_dates` first-of-month dates, `every_months` apart, whose
    # outcome window ends by the extract date.
    index_dates: int = Field(8, ge=3)
    every_months: int = Field(3, ge=1)
    # Index dates fall in this month and every `every_months` after it (1: Jan, Apr, Jul, Oct,
    # the quarter starts the synthetic generator's oracle uses).
    anchor_month: int = Field(1, ge=1, le=12)
    # An index date needs this many months of records before it (the longest feature window).
    history_months: int = Field(12, ge=0)
    # Split: people are assigned once (stable hash of person_id with `split_seed`) to train,
    # validation or test, so nobody's rows appear in two sets; train uses the earlier dates,
    # validation the next `validation_dates`, test the latest `test_dates`.
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.25, gt=0.0, lt=0.5)
    validation_dates: int = Field(1, ge=1)
    test_dates: int = Field(1, ge=1)
    split_seed: int = 2026
    # The modelled population is the listed one ([lists] exclusions, features.cohort), less
    # opted-out people always (contract: not used for training) and less these caseloads: the
    # one intended difference a site may set, stated in the model card.
    also_exclude_caseloads: list[Caseload] = Field(default_factory=list)
    # Too few outcomes to learn from or to evaluate on is an error, not a weak model.
    min_train_outcomes: int = Field(50, ge=1)
    min_eval_outcomes: int = Field(20, ge=1)
    # LightGBM (https://lightgbm.readthedocs.io/en/v4.6.0/Parameters.html).
    learning_rate: float = Field(0.05, gt=0.0)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(100, ge=1)
    feature_fraction: float = Field(0.9, gt=0.0, le=1.0)
    lambda_l2: float = Field(1.0, ge=0.0)
    max_rounds: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    threads: int = Field(0, ge=0)  # 0: LightGBM's default (all cores)
    seed: int = 7
    # Optuna tuning budget when `--tune N` is given: N trials, at most this many seconds.
    tune_timeout_seconds: float = Field(1800.0, gt=0.0)
    # Single-score baselines: name -> panel column (a logistic regression on the model's
    # features is always added). eFI: Clegg A, et al. Age Ageing 2016;45:353-60; HFRS: Gilbert T,
    # et al. Lancet 2018;391:1775-82.
    baselines: dict[str, str] = {
        "eFI band": "efi_band",
        "HFRS": "hfrs_score",
        "prior emergency admissions": "emergency_admissions_12m",
    }
    # Evaluation: PPV/sensitivity at these top shares, and at the neighbourhood list size.
    # ... and at each neighbourhood's list size, read from [lists] (`ListSettings.capacity_of`).
    top_fractions: tuple[float, ...] = (0.01, 0.02, 0.05)
    # Fairness: a group is flagged when it has at least `fairness_min_rows` rows and
    # `fairness_min_outcomes` outcomes and its observed/expected ratio is outside
    # 1 +/- `fairness_oe_tolerance`, or its false-negative rate at the list threshold is more
    # than `fairness_fnr_tolerance` above the whole test set's (both also beyond chance at the
    # 5% level), or its AUROC is more than `fairness_auroc_tolerance` below it. Project
    # choices, to be reviewed with the clinical lead.
    fairness_min_rows: int = Field(100, ge=1)
    fairness_min_outcomes: int = Field(10, ge=1)
    fairness_oe_tolerance: float = Field(0.2, gt=0.0)
    fairness_fnr_tolerance: float = Field(0.1, gt=0.0)
    fairness_auroc_tolerance: float = Field(0.08, gt=0.0)
    # Promotion gate: the candidate's AUROC may be at most `gate_auroc_tolerance` below the
    # champion's on the candidate's test rows; its calibration slope must lie in the bounds;
    # it may not add a fairness flag the champion does not have on the same rows.
    gate_auroc_tolerance: float = Field(0.005, ge=0.0)
    gate_slope_min: float = 0.8
    gate_slope_max: float = 1.2
    # Rows of training features kept with each run for drift checks.
    training_sample_rows: int = Field(20_000, ge=100)
    # Person-time after an MDT `accepted` review is labelled by the intervention, not the risk
    # (the naive-updating problem: Liley et al., arXiv 2010.11530): left out unless false.
    exclude_after_mdt_acceptance: bool = True


class RecordsSettings(BaseModel):
    """Loading an extract into DuckDB (records stage), for every command that reads one."""

    # Memory DuckDB may hold for the extract and the feature queries (a DuckDB size string); it
    # spills to <home>/tmp/duckdb beyond that, so a 1,000,000-person extract stays under 8 GB
    # with the Python side. Empty: DuckDB's own default (80% of the machine's memory).
    duckdb_memory_limit: str = "4GB"


class EngineSettings(BaseModel):
    """The SQL engine the features, outcome and scoring stages run on (docs/spark.md).

    DuckDB (the default) is embedded: nothing to start. Spark runs the same compiled definitions
    where national data lives: a local session (`master`, bound to loopback), or a cluster through
    Spark Connect (`remote`, else the `SPARK_REMOTE` environment variable).
    """

    model_config = {"extra": "forbid"}

    name: Literal["duckdb", "spark"] = "duckdb"
    master: str = "local[2]"
    remote: str | None = None  # sc://host:15002 (Spark Connect); None: $SPARK_REMOTE if set
    # Few shuffle partitions for a local session (Spark's 200 cost more than they save here).
    shuffle_partitions: int = Field(4, ge=1)
    driver_memory: str = "4g"  # a 2g local driver ran out of broadcast memory at 100,000 people
    conf: dict[str, str] = Field(default_factory=dict)  # further spark.* options
    # Training collects its panel to the driver for LightGBM; past the driver's memory, train on
    # this seeded share of people (all of a person's index dates kept or dropped together,
    # `features.cohort.PersonSample`), drawn in the query on either engine. 1.0: everyone.
    training_sample_fraction: float = Field(1.0, gt=0.0, le=1.0)
    training_sample_seed: int = 17

    def spark_remote(self) -> str | None:
        """The Spark Connect address in use, if any."""
        return self.remote or os.environ.get("SPARK_REMOTE") or None


class ListSettings(BaseModel):
    """Monthly MDT list rules: capacity, exclusions, flags, drift limits (lists stage).

    Defaults are project choices for a neighbourhood MDT, not published standards; each site sets
    its own (docs/lists.md).
    """

    # "capacity": the top `capacity` candidates of each neighbourhood (an MDT's monthly intake);
    # "threshold": every candidate whose calibrated probability is at least `threshold`.
    mode: Literal["capacity", "threshold"] = "capacity"
    capacity: int = Field(default=20, ge=0)
    capacity_by_neighbourhood: dict[str, NonNegativeInt] = Field(default_factory=dict)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # People already case-managed on these caseloads (contract `caseloads.caseload`) stay off.
    exclude_caseloads: list[Caseload] = Field(
        default_factory=lambda: ["neighbourhood_mdt", "end_of_life", "care_home_support"]
    )
    exclude_care_home: bool = True
    # The national data opt-out does not apply to direct care: a site that runs its lists as
    # direct care (its own IG decision) may set this to list opted-out people too.
    direct_care_use: bool = False
    # "Risk risen" flag: calibrated probability up by at least this much since last month.
    risen_by: float = Field(default=0.10, gt=0.0, le=1.0)
    top_reasons: int = Field(default=5, ge=1, le=20)
    # Drift: population stability index against the model's training data. 0.1 / 0.25 are the
    # conventional "some" / "major" shift rules of thumb (Siddiqi, Credit Risk Scorecards, 2006);
    # 0.2 is the project default for a warning.
    drift_warning_psi: float = Field(default=0.2, gt=0.0)
    drift_bins: int = Field(default=10, ge=2, le=100)
    drift_features: list[str] | None = None  # None: the model's most important features
    drift_top_features: int = Field(default=10, ge=0)

    def capacity_of(self, neighbourhood: str) -> int:
        """The neighbourhood's list size: its override, else `capacity`."""
        return int(self.capacity_by_neighbourhood.get(neighbourhood, self.capacity))


class SegmentSettings(BaseModel):
    """Population segments (features.segments): the thresholds of the one definition.

    The three groups are Staffordshire and Stoke-on-Trent's population segments (Fit and Well,
    High risk and Independent, In The System); the thresholds are project defaults a site sets.
    """

    model_config = {"extra": "forbid"}

    # In the system: on these caseloads (besides being in hospital or living in a care home).
    system_caseloads: list[Caseload] = Field(default_factory=lambda: ["care_home_support"])
    # High risk and independent: on these caseloads, ...
    independent_caseloads: list[Caseload] = Field(
        default_factory=lambda: ["neighbourhood_mdt", "community_matron", "end_of_life"]
    )
    # ... receiving these current social care services at home, ...
    independent_services: list[Literal["long_term_community", "direct_payment"]] = Field(
        default_factory=lambda: ["long_term_community", "direct_payment"]
    )
    # ... frail on the eFI at this category or above (Clegg 2016: mild, moderate, severe), ...
    min_efi_band: Literal["mild", "moderate", "severe"] = "moderate"
    # ... or a calibrated probability at least this (the lower bound of the "high" risk band).
    risk_probability: float = Field(default=0.30, gt=0.0, le=1.0)
    # Rising risk, within fit and well: the people of each neighbourhood whose probability rose
    # most since last month, at most `rising_risk_people` of them, each by at least
    # `rising_risk_min_rise`.
    rising_risk_people: int = Field(default=25, ge=0)
    rising_risk_min_rise: float = Field(default=0.02, gt=0.0, le=1.0)


class ServingSettings(BaseModel):
    """The web service: host, port, users store (serving stage)."""

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    # None means <home>/users.json.
    users_file: Path | None = None
    # Registered-model alias (or version number) loaded at start-up.
    model_ref: str = "champion"
    workers: int = Field(default=1, ge=1)
    threads: int = Field(default=4, ge=1)
    top_reasons: int = Field(default=5, ge=1, le=20)
    max_batch_rows: int = Field(default=500, ge=1)
    # Adaptive batching of /score: the most rows merged into one model call, and the longest
    # a request may wait in the batching queue.
    batch_max_rows: int = Field(default=1000, ge=1)
    batch_max_latency_ms: int = Field(default=2000, ge=10)
    # How long a registry reachability check is trusted before the next one.
    registry_check_seconds: float = Field(default=5.0, ge=0)
    # The page session cookie is marked Secure (sent over HTTPS only) unless this is true: set it
    # only for plain HTTP on loopback (the tests, `casefinder demo`).
    insecure_cookies: bool = False
    # A page session ends after this many hours, at sign-out, or when its user is revoked.
    session_hours: float = Field(default=12.0, gt=0)
    # Aggregate outputs (/summary, /segments counts) show counts from 1 to suppress_below - 1 as
    # "<suppress_below" (scoring/disclosure.py gives the source); 0 shows every count.
    suppress_below: int = Field(default=5, ge=0, le=100)
    # Failed sign-ins (bad or revoked tokens) allowed per client within the window before it
    # gets 429 with Retry-After until the window has passed.
    failed_tokens_allowed: int = Field(default=10, ge=1)
    failed_tokens_window_seconds: float = Field(default=60.0, gt=0)

    def users_path(self, home: Path) -> Path:
        """The users store: `users_file`, else `<home>/users.json`."""
        return self.users_file if self.users_file is not None else home / "users.json"


class DatabaseSettings(BaseModel):
    """The service's state database (users, page sessions, audit log, MDT reviews)."""

    model_config = {"extra": "forbid"}

    # A SQLAlchemy URL, e.g. postgresql+psycopg://casefinder@db.internal/casefinder. None means a
    # SQLite file, <home>/casefinder.db (embedded, nothing to start).
    url: str | None = None


class AuditSettings(BaseModel):
    """The audit log's key: its chain is HMAC-SHA256 keyed, the key kept apart from the log."""

    model_config = {"extra": "forbid"}

    # None means <home>/audit.key (created 0600 on first use). Keep it off the database host.
    key_path: Path | None = None


class ReviewSettings(BaseModel):
    """How the next month's list follows the MDT's decisions (features.cohort, docs/lists.md).
    Project defaults, to be set by each site with its MDTs."""

    model_config = {"extra": "forbid"}

    # declined / not_appropriate / already_known keep a person off the list this many months.
    suppress_months: int = Field(default=6, ge=0, le=60)
    # ... unless their calibrated probability has risen by at least this since the review.
    relist_if_risen: float = Field(default=0.10, gt=0.0, le=1.0)


class Settings(BaseSettings):
    """Everything a casefinder command can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="CASEFINDER_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(default_factory=home_dir)
    mlflow: MlflowSettings = MlflowSettings()
    records: RecordsSettings = RecordsSettings()
    engine: EngineSettings = EngineSettings()
    outcome: OutcomeSettings = OutcomeSettings()
    training: TrainingSettings = TrainingSettings()
    lists: ListSettings = ListSettings()
    segments: SegmentSettings = SegmentSettings()
    serving: ServingSettings = ServingSettings()
    database: DatabaseSettings = DatabaseSettings()
    audit: AuditSettings = AuditSettings()
    reviews: ReviewSettings = ReviewSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)

    # Paths of working state, all under home.
    @property
    def tracking_uri(self) -> str:
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def score_store(self) -> Path:
        return self.home / "scores"

    @property
    def duckdb_spill_dir(self) -> Path:
        return self.home / "tmp" / "duckdb"

    @property
    def audit_log(self) -> Path:
        """The audit log file of homes made before the database (`casefinder db import-home`)."""
        return self.home / "audit.log"

    @property
    def database_url(self) -> str:
        """`[database] url`, else a SQLite file under home."""
        return self.database.url or f"sqlite:///{(self.home / 'casefinder.db').resolve()}"

    @property
    def audit_key_path(self) -> Path:
        return self.audit.key_path if self.audit.key_path is not None else self.home / "audit.key"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def load_settings(**overrides: object) -> Settings:
    """Read settings from defaults, config file and environment; keyword overrides win."""
    return Settings(**overrides)
