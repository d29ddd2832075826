"""Safety limits (DESIGN §3 `safety`): refuse a plan that looks like a mistake before anything is written.

Checked in the order a sysadmin would want to hear about them: a school of the config missing from
the export, an empty roster (a broken export), most people unmatched (a wrong domain or match
property), a vanishing cohort (a year group gone from the export), too many deletions, too many
membership removals (as a share, then as a number). `--force` applies the plan anyway after review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartsync.config import SafetyConfig
from smartsync.engine.cohorts import MIN_COHORT_LOSS, CohortLoss
from smartsync.engine.plan import Plan

# Removals this small are never refused by the fraction limit: a small school's normal day can
# remove a large share of a handful of memberships.
MIN_REMOVALS_FOR_FRACTION = 10


@dataclass(frozen=True)
class Refusal:
    limit: str
    value: float
    allowed: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "value": self.value, "allowed": self.allowed, "message": self.message}


_NEXT = "Review with `smartsync plan`, then rerun with `--force` if intended."


def check(plan: Plan, limits: SafetyConfig) -> Refusal | None:
    """The first limit the plan breaks, or None when it is within every limit."""
    if plan.vanished_schools:
        names = ", ".join(plan.vanished_schools)
        plural = "s" if len(plan.vanished_schools) > 1 else ""
        return Refusal(
            "school_vanished",
            len(plan.vanished_schools),
            0,
            f"school{plural} {names} vanished from the export: it holds people, but none of {names}, which "
            "this config owns (school.code / school.codes). Refusing to read that as 'delete everything "
            f"of {names}'. Check the export (`smartsync validate`; the warnings name the schools it does "
            "hold), or correct school.code / school.codes. " + _NEXT,
        )
    if plan.roster_people == 0:
        return Refusal(
            "roster_empty",
            0,
            1,
            "Refusing to sync an empty roster (no active people in the export): it would empty every "
            f"managed group. Check the export, then `smartsync validate`. {_NEXT}",
        )
    accounts = _account_limits(plan, limits)
    if accounts is not None:
        return accounts
    unmatched = plan.roster_people - plan.matched_people
    fraction = unmatched / plan.roster_people
    if fraction > limits.max_unmatched_fraction:
        return Refusal(
            "max_unmatched_fraction",
            round(fraction, 4),
            limits.max_unmatched_fraction,
            f"Refusing to sync: {unmatched} of {plan.roster_people} roster people ({fraction:.0%}) match no "
            f"Entra user (limit {limits.max_unmatched_fraction:.0%}). Check users.match and the e-mail "
            f"domain in the export. {_NEXT}",
        )
    shrinking = [
        c
        for c in plan.cohort_losses
        if c.lost > MIN_COHORT_LOSS and c.fraction > limits.max_cohort_loss_fraction
    ]
    if shrinking:
        return Refusal(
            "max_cohort_loss_fraction",
            round(shrinking[0].fraction, 4),
            limits.max_cohort_loss_fraction,
            f"Refusing to sync: {'; '.join(c.describe() for c in shrinking)} (limit "
            f"{limits.max_cohort_loss_fraction:.0%} of a cohort in one run). Check that the export still "
            f"holds {_cohort_names(shrinking)} (`smartsync validate`). {_NEXT}",
        )
    deletes = [c for c in plan.changes if c.is_delete]
    if len(deletes) > limits.max_deletes:
        kinds = sorted({c.op.split(".")[0].replace("_", " ") for c in deletes})
        return Refusal(
            "max_deletes",
            len(deletes),
            limits.max_deletes,
            f"Refusing to delete or archive {len(deletes)} objects ({', '.join(kinds)}; limit "
            f"{limits.max_deletes}). {_NEXT}",
        )
    summary = plan.summary()
    removals = summary["members_removed"] + summary["owners_removed"] + summary["admin_unit_members_removed"]
    if plan.managed_memberships and removals > MIN_REMOVALS_FOR_FRACTION:
        share = removals / plan.managed_memberships
        if share > limits.max_membership_removal_fraction:
            return Refusal(
                "max_membership_removal_fraction",
                round(share, 4),
                limits.max_membership_removal_fraction,
                f"Refusing to remove {removals} of {plan.managed_memberships} managed memberships "
                f"({share:.0%}; limit {limits.max_membership_removal_fraction:.0%}). {_NEXT}",
            )
    if removals > limits.max_membership_removals:
        return Refusal(
            "max_membership_removals",
            removals,
            limits.max_membership_removals,
            f"Refusing to remove {removals} memberships in one run (of {plan.managed_memberships} managed; "
            f"limit {limits.max_membership_removals}, safety.max_membership_removals). {_NEXT}",
        )
    return None


def _cohort_names(losses: list[CohortLoss]) -> str:
    names = sorted({c.name for c in losses})
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


# sync.users: each kind of account change has its own ceiling (a wrong export must not create a
# second school, nor disable or delete one).
_ACCOUNT_LIMITS = (
    ("user.create", "max_account_creations", "create {n} accounts"),
    ("user.disable", "max_account_disables", "disable {n} accounts"),
    ("user.delete", "max_account_deletes", "delete {n} accounts"),
)


def _account_limits(plan: Plan, limits: SafetyConfig) -> Refusal | None:
    for op, limit, what in _ACCOUNT_LIMITS:
        count = plan.count(op)
        allowed = int(getattr(limits, limit))
        if count > allowed:
            return Refusal(
                limit,
                count,
                allowed,
                f"Refusing to {what.format(n=count)} in one run (safety.{limit} {allowed}). A September "
                "intake or the summer's leavers may need this once: check the roster export and the plan "
                f"(`smartsync plan`), then rerun with `--force`, or raise safety.{limit}.",
            )
    return None
