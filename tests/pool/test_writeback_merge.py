"""The three-way merge of credentials.json (pool/writeback.py): who wins which field, and tokens by expiry."""

from __future__ import annotations

from kiro_gateway.pool.writeback import merge_entry, merge_lists

OLD = {"accessToken": "old", "refreshToken": "r1" * 60, "expiresAt": "2030-01-01T00:00:00Z"}
NEW = {"accessToken": "new", "refreshToken": "r1" * 60, "expiresAt": "2030-01-01T01:00:00.000Z"}


def test_a_field_only_one_side_changed_takes_that_side():
    base = {"id": 1, "priority": 0, "note": "x", **OLD}
    ours = {**base, "priority": 3}
    theirs = {**base, "note": "edited"}
    for prefer in (True, False):
        got = merge_entry(base, ours, theirs, prefer)
        assert got["priority"] == 3 and got["note"] == "edited"


def test_a_field_both_changed_goes_to_the_saver_or_to_the_person():
    base = {"id": 1, "priority": 0, **OLD}
    ours, theirs = {**base, "priority": 3}, {**base, "priority": 9}
    assert merge_entry(base, ours, theirs, prefer_ours=True)["priority"] == 3  # saving: our change
    assert merge_entry(base, ours, theirs, prefer_ours=False)["priority"] == 9  # reloading: the edit
    removed = merge_entry({**base, "disabledReason": "Manual"}, {**base, "disabledReason": "Manual"}, base, False)
    assert "disabledReason" not in removed  # a key deleted by hand stays deleted


def test_newer_tokens_win_whatever_side_and_whatever_the_base():
    base = {"id": 1, **NEW}
    stale_buffer = {"id": 1, "priority": 4, **OLD}  # an editor saved a buffer opened before the refresh
    got = merge_entry(base, {"id": 1, **NEW}, stale_buffer, prefer_ours=False)
    assert got["accessToken"] == "new" and got["expiresAt"] == NEW["expiresAt"] and got["priority"] == 4
    got = merge_entry({"id": 1, **OLD}, {"id": 1, **OLD}, {"id": 1, **NEW}, prefer_ours=True)
    assert got["accessToken"] == "new"  # another process refreshed: its tokens are kept when we save


def test_a_pasted_new_login_replaces_the_tokens():
    base = {"id": 1, **NEW}
    pasted = {"id": 1, "refreshToken": "r2" * 60}
    got = merge_entry(base, base, pasted, prefer_ours=False)
    assert got["refreshToken"] == "r2" * 60 and "accessToken" not in got


def test_credentials_added_or_removed_on_either_side():
    a, b, c, d = ({"id": i, "refreshToken": f"t{i}" * 60} for i in (1, 2, 3, 4))
    base = [a, b, c]
    ours = [a, c, d]  # we deleted b and added d
    theirs = [a, b, {"id": 5, "refreshToken": "t5" * 60}]  # they deleted c and added 5
    got = merge_lists(base, ours, theirs, prefer_ours=True)
    assert [e["id"] for e in got] == [1, 5, 4]


def test_a_rotation_of_a_minimal_credential_is_ours_not_a_new_login():
    """The README's minimal form has no access token or expiry: its first refresh, which rotates the
    refresh token, must not be mistaken for a person's new login and rolled back to the old token."""
    base = {"refreshToken": "old-r" * 20, "authMethod": "social"}
    ours = {**base, "refreshToken": "new-r" * 20, "accessToken": "at", "expiresAt": "2030-01-01T01:00:00.000Z"}
    for prefer in (True, False):
        got = merge_entry(base, ours, dict(base), prefer)
        assert got["refreshToken"] == "new-r" * 20 and got["accessToken"] == "at", prefer
    got = merge_lists([base], [ours], [dict(base)], prefer_ours=True)
    assert got[0]["refreshToken"] == "new-r" * 20
    # A person who really pasted a new login meanwhile still wins over our older refresh.
    pasted = {"refreshToken": "pasted" * 20, "authMethod": "social"}
    assert merge_entry(base, ours, pasted, prefer_ours=False)["refreshToken"] == "pasted" * 20
