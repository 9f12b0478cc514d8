"""Size accounting against the cap and the reference run's numbers."""

from gepa.sizes import SIZE_CAP_BYTES, size_report


def test_reference_run_numbers():
    r = size_report(b"x" * 76_429, 15_626_769)
    assert (r.code_bytes, r.total_bytes, r.headroom_bytes, r.within_cap) == (76_429, 15_703_198, 296_802, True)
    assert r.to_dict()["cap_bytes"] == SIZE_CAP_BYTES == 16_000_000


def test_code_counts_utf8_bytes_not_characters():
    assert size_report("a\u2014b", 0).code_bytes == 5  # the em-dash is 3 bytes


def test_cap_is_inclusive_and_decimal():
    assert size_report(b"", 16_000_000).within_cap
    over = size_report("x", 16_000_000)
    assert not over.within_cap and over.headroom_bytes == -1
