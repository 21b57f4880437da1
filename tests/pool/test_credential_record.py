"""The credential record's setters: the only writers of a credential's dict, and the file's own
shape (its keys, in their casing) survives them."""

from kiro_gateway.pool.credential import Credential


def test_disable_and_enable_keep_the_reason_in_step():
    cred = Credential({"refreshToken": "r" * 120}, 0)
    cred.set_disabled(True, "Manual")
    assert (cred.disabled, cred.disabled_reason) == (True, "Manual")
    cred.set_disabled(False, "ignored when enabling")
    assert cred.raw == {"refreshToken": "r" * 120, "disabled": False}
    assert cred.disabled_reason is None


def test_name_priority_and_id():
    cred = Credential({"refresh_token": "x"}, 4)
    cred.set_name("work")
    cred.set_priority(3)
    assert (cred.name, cred.priority, cred.id, cred.has_own_id) == ("work", 3, "5", False)
    cred.pin_id()
    assert cred.raw["id"] == 5 and cred.has_own_id
    cred.set_name("")
    assert "name" not in cred.raw


def test_subscription_reports_a_change_once():
    cred = Credential({}, 0)
    assert cred.set_subscription("KIRO FREE", "a@example.com")
    assert not cred.set_subscription("KIRO FREE", None)
    assert (cred.subscription_title, cred.email) == ("KIRO FREE", "a@example.com")


def test_refresh_keeps_the_users_spelling_of_other_fields():
    raw = {"refresh_token": "old", "auth_method": "social", "myNote": "kept"}
    cred = Credential(raw, 0)
    cred.apply_refresh("at", None, 3600)
    assert cred.raw["refresh_token"] == "old" and cred.raw["auth_method"] == "social"
    assert cred.raw["myNote"] == "kept" and cred.access_token == "at" and cred.expires_at


def test_adopted_tokens_replace_every_spelling():
    cred = Credential({"access_token": "a0", "refresh_token": "r0", "expires_at": 1, "profile_arn": "arn:p"}, 0)
    cred.apply_tokens({"accessToken": "a1", "refreshToken": "r1", "expiresAt": "2030-01-01T00:00:00Z",
                       "profileArn": "arn:other"})
    assert cred.raw == {"profile_arn": "arn:p", "accessToken": "a1", "refreshToken": "r1",
                        "expiresAt": "2030-01-01T00:00:00Z"}
    # without a refresh token the one held stays
    cred.apply_tokens({"accessToken": "a2"})
    assert cred.refresh_token == "r1" and cred.access_token == "a2" and "expiresAt" not in cred.raw
    assert cred.token_fields() == {"accessToken": "a2", "refreshToken": "r1", "expiresAt": None,
                                   "profileArn": None}
