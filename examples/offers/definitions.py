"""Definitions of the offers example project: a decision model choosing an offer per customer.

Each row of ``data/rounds.parquet`` is one logged round: a customer arrived
(segment, tenure, engagement score), the logging policy showed an offer
(``action``) with a known probability (``propensity``), and the customer
bought or not (``reward``, known an hour later). The model learns the reward
of every offer from those rounds and serves the best one, exploring a
little; ``environment.py`` holds the true purchase probabilities, so tests
can check its off-policy estimates against the truth.
"""

import lightgbm

import fourloops as fl

offers = fl.Model(
    "offers",
    task="policy",
    description="Which offer to show a customer: none, a discount, free shipping or a bundle.",
    entities=fl.FileSource("data/rounds.parquet", timestamp="at", name="rounds"),
    request=fl.Contract(
        {
            "segment": fl.Category(["new", "regular", "vip"]),
            "tenure": fl.Int(min=0, max=120, description="months as a customer"),
            "score": fl.Float(min=0, max=1, description="engagement score"),
            "customer_id": fl.String(nullable=True),
        }
    ),
    actions=["none", "discount", "free_shipping", "bundle"],
    # Epsilon-greedy: 10 % of requests get a uniformly drawn offer; every offer keeps at least 2 %;
    # vip customers see something else than the best offer at most 8 % of the time.
    exploration=fl.Explore(rate=0.1, floor=0.02, max_rate_by_segment={"segment=vip": 0.08}),
    # The label is the reward of the offer shown: 1 if the customer bought.
    label=fl.Label("reward", available="rewarded_at"),
    trainer=lightgbm.LGBMRegressor(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=7,
        min_child_samples=40,
        min_data_per_group=20,
        cat_smooth=5,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    ),
    segments=["segment"],
    split=fl.TimeSplit(validation=0.15, test=0.3),
    gates=[
        # Registered as passing only if the lower bound of its doubly robust estimate beats the
        # champion's estimated value (the logging policy's, before there is a champion).
        fl.gates.OffPolicyLift(min_lift=0.0, estimator="dr"),
        fl.gates.LatencyBudget(p99_ms=20),
        fl.gates.MaxArtifactSize("5MB"),
    ],
    fallback=fl.Fallback(constant="none"),
    # A new policy answers a fifth of the customers first; it must not sell less than the champion.
    # During the canary, its realised reward is also compared with its off-policy estimate.
    rollout=fl.Rollout(
        stages=[fl.Canary(0.2, min_requests=500, max_duration="7d"), fl.Full()],
        checks=[fl.Check("reward", margin=0.02), fl.Check("fallback", margin=0.01, critical=True)],
    ),
)
