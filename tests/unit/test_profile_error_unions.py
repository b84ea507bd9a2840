"""A typo under a key whose model is optional (`X | None`, types.UnionType) lists that model's valid keys, as
one under `Optional[X]` (typing.Union) does: `verify[].call`, `components[].live_update`."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from devloop.profile.errors import _model_for, format_errors
from devloop.profile.schema import Profile, VerifyCall


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: int = 0
    beta: int = 0


class Root(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_style: Inner | None = None
    old_style: Optional[Inner] = None  # noqa: UP045 - the spelling under test
    old_union: Union[Inner, None] = None  # noqa: UP007 - the spelling under test
    items: list[Inner] | None = None


def test_every_spelling_of_an_optional_model_is_unwrapped():
    for key in ("new_style", "old_style", "old_union"):
        assert _model_for(Root, (key,)) is Inner, key
    assert _model_for(Root, ("items", 0)) is Inner


def test_a_typo_inside_an_x_or_none_model_lists_its_keys(tmp_path):
    data = {"new_style": {"alpah": 1}}
    try:
        Root.model_validate(data)
    except ValidationError as exc:
        text = format_errors(exc.errors(), data, None, tmp_path / "p.yaml", Root)
    else:
        raise AssertionError("validated")
    assert "unknown key 'alpah' in new_style; expected one of: alpha, beta" in text


def test_the_profiles_own_optional_blocks():
    assert _model_for(Profile, ("verify", 0, "call")) is VerifyCall
    live_update = _model_for(Profile, ("components", 0, "live_update"))
    assert live_update is not None and "sync" in live_update.model_fields
