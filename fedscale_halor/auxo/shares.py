"""How many participants each cohort gets, and the two job-wide numbers Auxo derives from the client count
(Auxo's published code in FedScale: schedule_plan and getDataInfo)."""

from __future__ import annotations


def cohort_participants(total_participants: int, cohort_count: int) -> int:
    """Participants per cohort per round: an equal share of the job's, at least one, so a small cohort still
    trains."""
    if total_participants < 0:
        raise ValueError(f"total_participants must be non-negative, got {total_participants}")
    if cohort_count < 1:
        raise ValueError(f"cohort_count must be at least 1, got {cohort_count}")
    return max(1, total_participants // cohort_count)


def train_ratio(num_participants: int, total_clients: int) -> float:
    """The share of all clients that trains in a round; the reward table trusts a cohort's centre from a single
    known member only when every client trains (ratio >= 1)."""
    if total_clients < 1:
        raise ValueError(f"total_clients must be at least 1, got {total_clients}")
    return num_participants / total_clients


def known_client_count(total_clients: int) -> int:
    """Auxo's count of "known" clients, one in twenty; its automatic split test compares sub-cohort sizes to it."""
    if total_clients < 0:
        raise ValueError(f"total_clients must be non-negative, got {total_clients}")
    return total_clients // 20
