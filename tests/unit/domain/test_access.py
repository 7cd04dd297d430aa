import uuid

import pytest

from app.domain.access import ADMINS, EVERYONE, SUPERVISORS, Principal, Role


def person(role: Role, sites=frozenset({1})) -> Principal:
    return Principal(uuid.uuid4(), uuid.uuid4(), "x", "X", role, None, frozenset(sites))


@pytest.mark.parametrize(
    ("role", "allowed", "expected"),
    [
        (Role.OPERATOR, EVERYONE, True),
        (Role.OPERATOR, SUPERVISORS, False),
        (Role.OPERATOR, ADMINS, False),
        (Role.SUPERVISOR, SUPERVISORS, True),
        (Role.SUPERVISOR, ADMINS, False),
        (Role.ADMIN, ADMINS, True),
    ],
)
def test_roles_reach_what_their_policy_allows(role, allowed, expected):
    assert person(role).may(allowed) is expected


def test_operators_work_only_on_their_sites():
    operator = person(Role.OPERATOR, {1})
    assert operator.may_work_on(1)
    assert not operator.may_work_on(2)
    assert operator.site_scope == frozenset({1})


def test_admins_work_on_every_site():
    admin = person(Role.ADMIN, frozenset())
    assert admin.may_work_on(99)
    assert admin.site_scope is None
