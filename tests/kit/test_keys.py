"""One key per purpose, derived from each configured secret key (``kit.keys``)."""

from __future__ import annotations

from kithost.kit.keys import Keys, Purpose


def test_each_purpose_has_a_key_of_its_own() -> None:
    secret = "one-key-0123456789"
    keys = Keys((secret,))
    current = {keys.current(purpose) for purpose in Purpose}
    assert len(current) == len(Purpose)
    assert all(len(key) == 32 for key in current)
    assert secret.encode() not in current


def test_a_new_secret_key_first_keeps_what_the_old_one_derives_after_it() -> None:
    old, rotated = Keys(("old-key",)), Keys(("new-key", "old-key"))
    for purpose in Purpose:
        assert rotated.derived(purpose) == (
            Keys(("new-key",)).current(purpose),
            old.current(purpose),
        )
        assert rotated.current(purpose) != old.current(purpose)


def test_the_derivation_never_changes() -> None:
    """Secrets at rest are encrypted with these keys: HKDF-SHA256 of the secret key with
    ``info=b"kithost/<purpose>"``; another derivation would lose every one of them."""
    key = Keys(("kithost-test-key",)).current(Purpose.secrets)
    assert key.hex() == "1ec33f218aff27dd2e5056af2558127b89abc06c4bc6dd34e42d8c05749f6d50"
