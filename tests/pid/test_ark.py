"""NOID check characters and ARK names (node/pid/ark.py): published examples, random round trips,
the error-detection guarantee, and ARK normalisation."""

from __future__ import annotations

import pytest

from node.pid import ark

# (check zone, check character) from real, published ARKs:
KNOWN = [
    # The worked example of the NOID documentation ("NOID CHECK DIGIT ALGORITHM",
    # https://metacpan.org/dist/Noid/view/noid): 13030/xf93gt2 → q.
    ("13030/xf93gt2", "q"),
    # A real California Digital Library ARK, ark.cdlib.org/ark:/13030/tf5p30086k, the standing
    # example of the ARK documentation.
    ("13030/tf5p30086", "k"),
    # An ARK minted by EZID's own minter on its test shoulder ark:/99933/x1, recorded in EZID's
    # test samples (CDLUC3/ezid, tests/test_docs/sample/
    # test_api_mint-test_1000[ark-99933-x1-unknown].sample).
    ("99933/x14w2", "j"),
]


@pytest.mark.parametrize(("zone", "check"), KNOWN)
def test_check_character_of_published_arks(zone: str, check: str):
    assert ark.check_char(zone) == check
    assert ark.is_valid(f"ark:/{zone}{check}")
    assert ark.is_valid(f"ark:{zone}{check}")  # the modern label form
    assert ark.is_valid(f"https://n2t.net/ark:/{zone}{check}")


def test_the_noid_worked_example_step_by_step():
    # 13030/xf93gt2: ordinals 1 3 0 3 0 0 27 13 9 3 14 24 2 at positions 1..13 sum to 891,
    # 891 mod 29 = 21, and the 21st betanumeric character is q ('/' counts 0).
    zone = "13030/xf93gt2"
    total = sum(pos * ark.BETANUMERIC.find(c) * (c != "/") for pos, c in enumerate(zone, 1))
    assert total == 891
    assert ark.BETANUMERIC[891 % 29] == "q" == ark.check_char(zone)


def test_characters_outside_the_repertoire_count_zero():
    assert ark.check_char("13030/XF93GT2") == ark.check_char("13030/0093002")
    assert ark.check_char("0") == ark.check_char("/") == "0"


def test_minted_names_round_trip_and_are_valid():
    seen = set()
    for _ in range(2000):
        pid = ark.mint_candidate("99999", "fk4", 8)
        seen.add(pid)
        assert pid.startswith("ark:/99999/fk4")
        assert len(pid) == len("ark:/99999/fk4") + 8 + 1
        assert ark.is_betanumeric(pid.removeprefix("ark:/99999/"))
        assert ark.is_valid(pid, naan="99999", shoulder="fk4")
        assert ark.normalise(pid) == pid
        assert ark.normalise(pid.replace("ark:/", "ARK:")) == pid
        parts = ark.parse(pid)
        assert (parts.naan, parts.base, parts.qualifier) == ("99999", pid, "")
    assert len(seen) == 2000  # 29^8 names: a repeat here would mean a broken generator


def test_every_single_substitution_and_adjacent_transposition_is_detected():
    """The NOID guarantee for strings shorter than 29: any one wrong character or any swap of
    two neighbouring distinct characters (the check character included) fails the check."""
    for _ in range(200):
        pid = ark.mint_candidate("99999", "fk4", 8)
        prefix, name = "ark:/99999/", pid.removeprefix("ark:/99999/")
        for i, original in enumerate(name):
            for c in ark.BETANUMERIC:
                if c != original:
                    assert not ark.is_valid(prefix + name[:i] + c + name[i + 1 :]), (pid, i, c)
        for i in range(len(name) - 1):
            if name[i] != name[i + 1]:
                swapped = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
                assert not ark.is_valid(prefix + swapped), (pid, i)


def test_normalisation_follows_the_ark_spec():
    base = "ark:/99999/fk4bc5df"
    assert ark.normalise("ark:99999/fk4bc5df") == base
    assert ark.normalise("ARK:/99999/fk4-bc5-df") == base  # hyphens are identity-inert
    assert ark.normalise("https://example.org/ark:/99999/fk4bc5df/") == base
    assert ark.normalise("ark:/99999/fk4bc5df.") == base
    assert ark.parse("ark:/99999/fk4bc5df/c2//s4.pdf").qualifier == "/c2/s4.pdf"
    assert ark.parse("ark:/99999/fk4bc5df.v2").qualifier == ".v2"
    # The name is case-sensitive: upper case makes another ARK.
    assert ark.normalise("ark:/99999/FK4BC5DF") != base
    for bad in ("", "ark:", "ark:/99999", "ark:/99999/", "doi:10.1234/x", "99999/fk4"):
        with pytest.raises(ValueError, match="is not an ARK"):
            ark.parse(bad)


def test_validation_rejects_wrong_naan_shoulder_check_or_qualifier():
    pid = ark.mint_candidate("99999", "fk4", 6)
    assert ark.is_valid(pid, naan="99999", shoulder="fk4")
    assert not ark.is_valid(pid, naan="12345")
    assert not ark.is_valid(pid, shoulder="x5")
    assert not ark.is_valid(pid + "/part")
    assert not ark.is_valid("ark:/99999/fk4")  # "4" is not the check character of 99999/fk
    assert not ark.is_valid("not an ark")


def test_blades_come_from_the_whole_repertoire():
    chars = set("".join(ark.random_blade(20) for _ in range(200)))
    assert chars == set(ark.BETANUMERIC)
    with pytest.raises(ValueError, match="at least one character"):
        ark.random_blade(0)
