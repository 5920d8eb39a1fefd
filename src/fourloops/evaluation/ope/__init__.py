"""Off-policy (counterfactual) evaluation: what a new policy would have earned, from logs of the old one.

A **logging policy** chose one action per round (for one position of a
slate, or the only one) with a known probability, the **propensity**, and
the reward was observed. A **target policy** gives every action a probability
per position (the same in every round, or per round). Off-policy evaluation
estimates the target policy's **value**, its mean reward on the logged rounds'
contexts and positions, without deploying it.

* :func:`ope` (``fl.ope``): the logs and the policy as frames or files, four
  estimators (DM, IPS, SNIPS, DR; :mod:`~fourloops.evaluation.ope.estimators`)
  with seeded percentile bootstrap intervals over rounds
  (:mod:`~fourloops.evaluation.ope.bootstrap`), diagnostics and a verdict
  (:mod:`~fourloops.evaluation.ope.diagnostics`) in an :class:`OPEResult`.
* The **importance weight** of a round is the target probability of the
  logged action at its position divided by the logged propensity.
* Assumptions, stated once: the logged propensities are the probabilities the
  logger really used; every (action, position) the target policy takes had a
  positive logging probability (**common support**; its failure is measured as
  ``unsupported_mass``); rounds are independent draws (rows sharing a round id
  are resampled together); the reward of a round does not depend on the
  actions of other rounds. The direct method's reward model is tabular (mean
  reward per action and position), so it ignores context.
* ``fourloops ope`` is the command; ``Project.ope`` runs the same estimators
  on a project's own event log, where the action is the route that answered.
"""

from __future__ import annotations

from fourloops.evaluation.ope.align import Rounds, align
from fourloops.evaluation.ope.api import evaluate, ope
from fourloops.evaluation.ope.diagnostics import Diagnostics, Verdict
from fourloops.evaluation.ope.logs import LoggedBandit, read_logs
from fourloops.evaluation.ope.policy import ActionPolicy, RoundPolicy, read_policy
from fourloops.evaluation.ope.result import Estimate, OPEResult

__all__ = [
    "ActionPolicy",
    "Diagnostics",
    "Estimate",
    "LoggedBandit",
    "OPEResult",
    "RoundPolicy",
    "Rounds",
    "Verdict",
    "align",
    "evaluate",
    "ope",
    "read_logs",
    "read_policy",
]
