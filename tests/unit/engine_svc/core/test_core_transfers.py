"""Cross-shard transfers between two cores: debit, idempotent credit, settle, recovery."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_svc.core import (
    Command,
    Core,
    CreateAccount,
    Reason,
    ReceiveTransfer,
    Result,
    SendTransfer,
    SettleTransfer,
    TransferFunds,
    TransferView,
)
from engine_svc.core.codec import CodecError, decode_command, encode_command
from engine_svc.core.spot.enums import TransferDirection

USD = 1_000_000
TO_SPOT = TransferDirection.TO_SPOT
TO_CFD = TransferDirection.TO_CFD
TS = 1_700_000_000_000_000_000


class Shard:
    """One shard's core with its journal (encoded commands) and its last snapshot."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.core = Core()
        self.journal: list[bytes] = []
        self.snapshot: bytes | None = None

    def run(self, command: Command) -> Result:
        """Journal a command, as the sequencer does, and apply it."""
        record = encode_command(command)
        self.journal.append(record)
        return self.core.apply(decode_command(record))

    def next_seq(self) -> int:
        return len(self.journal) + 1

    def send(self, transfer_id: str, amount: int, direction: TransferDirection) -> Result:
        peer = 0 if direction is TO_SPOT else 1
        seq = self.next_seq()
        return self.run(SendTransfer(seq, TS + seq, "u", transfer_id, amount, direction, peer))

    def receive(self, view: TransferView, peer: int) -> Result:
        seq = self.next_seq()
        return self.run(
            ReceiveTransfer(
                seq, TS + seq, view.account_id, view.transfer_id, view.amount, view.direction, peer
            )
        )

    def settle(self, transfer_id: str) -> Result:
        seq = self.next_seq()
        return self.run(SettleTransfer(seq, TS + seq, transfer_id))

    def take_snapshot(self) -> None:
        self.snapshot = self.core.snapshot()

    def crash(self) -> None:
        """Lose the memory: restore the last snapshot and replay the journal after it."""
        before = self.core.digest()
        core = Core() if self.snapshot is None else Core.restore(self.snapshot)
        for record in self.journal[core.last_seq :]:
            core.apply(decode_command(record))
        assert core.digest() == before
        self.core = core


def _shards(balance: int = 1000 * USD) -> tuple[Shard, Shard]:
    """Return shard 0 (the account's spot wallet, no CFD money) and shard 1 (its home)."""
    spot, home = Shard(0), Shard(1)
    assert spot.run(CreateAccount(1, TS, "u", 0)).ok
    assert home.run(CreateAccount(1, TS, "u", balance)).ok
    return spot, home


def _wallet(shard: Shard) -> int:
    return next((b.available for b in shard.core.spot.wallet("u") if b.asset == "USD"), 0)


def _cfd(shard: Shard) -> int:
    summary = shard.core.account_summary("u")
    assert summary is not None
    return summary.balance


def _holdings(core: Core) -> int:
    held, fees, _ = core.spot.asset_totals("USD")
    return core.total_user_money() + core.house_balance + held + fees


def _shard_conserved(core: Core) -> bool:
    stats = core.stats()
    return _holdings(core) == (
        stats.total_deposits + stats.transfers_received - stats.transfers_sent
    )


def _globally_conserved(*shards: Shard) -> bool:
    """Σ holdings + money sent and not yet received = Σ deposits, over all shards."""
    stats = [shard.core.stats() for shard in shards]
    unreceived = sum(s.transfers_sent for s in stats) - sum(s.transfers_received for s in stats)
    holdings = sum(_holdings(shard.core) for shard in shards)
    return holdings + unreceived == sum(s.total_deposits for s in stats)


def test_a_transfer_to_spot_debits_the_home_shard_then_credits_shard_0_once() -> None:
    spot, home = _shards()
    sent = home.send("t-1", 300 * USD, TO_SPOT)
    view = TransferView("t-1", "u", 300 * USD, TO_SPOT, 0)
    assert sent.ok and sent.payload == view and not sent.duplicate
    assert _cfd(home) == 700 * USD and _wallet(spot) == 0
    assert home.core.transfers_in_flight() == [view]
    stats = home.core.stats()
    assert (stats.transfers_sent, stats.transfers_in_flight) == (300 * USD, 300 * USD)
    assert _shard_conserved(home.core) and _globally_conserved(spot, home)

    received = spot.receive(view, 1)
    assert received.ok and not received.duplicate
    assert _wallet(spot) == 300 * USD
    assert spot.core.stats().transfers_received == 300 * USD
    assert _shard_conserved(spot.core) and _globally_conserved(spot, home)

    settled = home.settle("t-1")
    assert settled.ok and not settled.duplicate
    assert home.core.transfers_in_flight() == []
    stats = home.core.stats()
    assert (stats.transfers_sent, stats.transfers_in_flight) == (300 * USD, 0)
    assert _globally_conserved(spot, home)


def test_a_transfer_to_cfd_debits_the_wallet_on_shard_0_then_credits_the_home_shard() -> None:
    spot, home = _shards()
    view = home.send("t-1", 300 * USD, TO_SPOT).payload
    assert isinstance(view, TransferView)
    assert spot.receive(view, 1).ok and home.settle("t-1").ok

    back = spot.send("t-2", 120 * USD, TO_CFD)
    assert back.ok and back.payload == TransferView("t-2", "u", 120 * USD, TO_CFD, 1)
    assert _wallet(spot) == 180 * USD and _cfd(home) == 700 * USD
    assert spot.core.stats().transfers_in_flight == 120 * USD
    assert _globally_conserved(spot, home)
    assert isinstance(back.payload, TransferView)
    assert home.receive(back.payload, 0).ok
    assert spot.settle("t-2").ok
    assert _wallet(spot) == 180 * USD and _cfd(home) == 820 * USD
    assert _shard_conserved(spot.core) and _shard_conserved(home.core)
    assert _globally_conserved(spot, home)


def test_every_repeat_answers_the_first_result_and_changes_nothing() -> None:
    spot, home = _shards()
    first = home.send("t-1", 300 * USD, TO_SPOT)
    digest = home.core.digest()
    again = home.send("t-1", 300 * USD, TO_SPOT)
    assert again.ok and again.duplicate and again.payload == first.payload and not again.events
    assert home.core.digest() == digest
    assert isinstance(first.payload, TransferView)
    assert spot.receive(first.payload, 1).ok
    digest = spot.core.digest()
    twice = spot.receive(first.payload, 1)
    assert twice.ok and twice.duplicate and spot.core.digest() == digest
    assert home.settle("t-1").ok
    digest = home.core.digest()
    assert home.settle("t-1").duplicate and home.core.digest() == digest
    # Still a duplicate after the transfer was settled.
    assert home.send("t-1", 300 * USD, TO_SPOT).duplicate
    assert _cfd(home) == 700 * USD and _wallet(spot) == 300 * USD


def test_a_transfer_id_reused_for_another_transfer_is_rejected() -> None:
    spot, home = _shards()
    assert home.send("t-1", 300 * USD, TO_SPOT).ok
    other = home.send("t-1", 200 * USD, TO_SPOT)
    assert other.reason is Reason.IDEMPOTENCY_KEY_REUSED and other.field == "transfer_id"
    view = TransferView("t-1", "u", 300 * USD, TO_SPOT, 0)
    assert spot.receive(view, 1).ok
    forged = spot.receive(view._replace(amount=400 * USD), 1)
    assert forged.reason is Reason.IDEMPOTENCY_KEY_REUSED
    assert _wallet(spot) == 300 * USD


def test_a_rejected_send_records_nothing_and_its_id_stays_free() -> None:
    spot, home = _shards()
    digest = home.core.digest()
    too_much = home.send("t-1", 1001 * USD, TO_SPOT)
    assert too_much.reason is Reason.INSUFFICIENT_BALANCE
    assert home.core.digest() == digest and home.core.transfers_in_flight() == []
    assert spot.send("t-2", 1 * USD, TO_CFD).reason is Reason.INSUFFICIENT_BALANCE
    assert home.send("t-1", 1000 * USD, TO_SPOT).ok
    assert _cfd(home) == 0


def test_malformed_transfers_and_unknown_settles_are_rejected() -> None:
    spot, home = _shards()
    assert home.send("", 1 * USD, TO_SPOT).reason is Reason.VALIDATION_FAILED
    assert home.send("t" * 65, 1 * USD, TO_SPOT).reason is Reason.VALIDATION_FAILED
    assert home.send("t-1", 0, TO_SPOT).reason is Reason.VALIDATION_FAILED
    unknown = home.settle("t-9")
    assert unknown.reason is Reason.VALIDATION_FAILED
    stranger = TransferView("t-3", "nobody", 1 * USD, TO_SPOT, 1)
    assert spot.receive(stranger, 1).reason is Reason.ACCOUNT_NOT_FOUND


def test_a_local_transfer_and_a_cross_shard_transfer_conserve_together() -> None:
    spot, home = _shards()
    seq = home.next_seq()
    assert home.run(TransferFunds(seq, TS, "u", 50 * USD, TO_SPOT)).ok
    assert home.send("t-1", 100 * USD, TO_SPOT).ok
    assert _shard_conserved(home.core) and _globally_conserved(spot, home)


def test_transfer_commands_round_trip_through_the_codec() -> None:
    commands: list[Command] = [
        SendTransfer(5, TS, "u", "t-1", 7, TO_SPOT, 0),
        ReceiveTransfer(6, TS, "u", "t-1", 7, TO_CFD, 3),
        SettleTransfer(7, TS, "t-1"),
    ]
    for command in commands:
        assert decode_command(encode_command(command)) == command
    assert encode_command(commands[0]) == b'["SendTransfer",5,%d,"u","t-1",7,"TO_SPOT",0]' % TS


def test_a_snapshot_keeps_transfers_in_flight_sent_and_received() -> None:
    spot, home = _shards()
    assert home.send("t-1", 300 * USD, TO_SPOT).ok
    assert home.send("t-2", 100 * USD, TO_SPOT).ok
    assert spot.receive(TransferView("t-1", "u", 300 * USD, TO_SPOT, 0), 1).ok
    assert home.settle("t-1").ok
    for shard in (spot, home):
        restored = Core.restore(shard.core.snapshot())
        assert restored.digest() == shard.core.digest()
        assert restored.stats() == shard.core.stats()
        assert restored.snapshot() == shard.core.snapshot()
    restored = Core.restore(home.core.snapshot())
    assert [view.transfer_id for view in restored.transfers_in_flight()] == ["t-2"]
    assert restored.sent_transfer("t-1") is not None
    assert Core.restore(spot.core.snapshot()).received_transfer("t-1") is not None
    # The restored core still answers repeats with the first result.
    seq = restored.last_seq + 1
    assert restored.apply(SendTransfer(seq, TS, "u", "t-1", 300 * USD, TO_SPOT, 0)).duplicate


def test_a_state_without_transfers_has_the_digest_it_had_before_transfers() -> None:
    _, home = _shards()
    assert b'"version":6' in home.core.snapshot()
    header, _, body = home.core.snapshot().partition(b"\n")
    older = header.replace(b'"version":6', b'"version":5') + b"\n" + body
    assert Core.restore(older).digest() == home.core.digest()


def test_a_snapshot_whose_transfers_do_not_conserve_money_is_rejected() -> None:
    _, home = _shards()
    assert home.send("t-1", 300 * USD, TO_SPOT).ok
    snapshot = home.core.snapshot()
    tampered = snapshot.replace(b'["t-1","u",300000000,', b'["t-1","u",300000001,')
    assert tampered != snapshot
    try:
        Core.restore(tampered)
    except CodecError as error:
        assert "conserve" in str(error)
    else:
        raise AssertionError("a snapshot that does not conserve money restored")


# ----------------------------------------------------------------- two cores, at random

Step = tuple[str, int, int]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["spot", "cfd", "deliver", "redeliver", "settle", "snapshot", "crash"]),
        st.integers(0, 5),
        st.integers(1, 400),
    ),
    max_size=40,
)


def _deliver(spot: Shard, home: Shard, transfer_id: str) -> None:
    """Credit a transfer on its peer (a re-delivery is harmless) without settling it."""
    sender, receiver, peer = (home, spot, 1) if transfer_id.startswith("s") else (spot, home, 0)
    view = sender.core.sent_transfer(transfer_id)
    assert view is not None
    result = receiver.receive(view, peer)
    assert result.ok


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_random_transfers_move_money_exactly_once_through_crashes(steps: list[Step]) -> None:
    spot, home = _shards()
    shards = (spot, home)
    accepted: dict[str, int] = {}
    delivered: set[str] = set()
    cfd, wallet = 1000 * USD, 0
    for action, pick, amount in steps:
        if action in ("spot", "cfd"):
            direction = TO_SPOT if action == "spot" else TO_CFD
            transfer_id = f"{'s' if action == 'spot' else 'c'}-{pick}"
            sender = home if direction is TO_SPOT else spot
            result = sender.send(transfer_id, amount * USD, direction)
            known = accepted.get(transfer_id)
            if known is not None:
                expected = known == amount * USD
                assert result.duplicate == expected
                assert result.ok == expected
                continue
            if result.ok:
                accepted[transfer_id] = amount * USD
                if direction is TO_SPOT:
                    cfd -= amount * USD
                else:
                    wallet -= amount * USD
            else:
                assert result.reason is Reason.INSUFFICIENT_BALANCE
        elif action in ("deliver", "redeliver") and accepted:
            ids = sorted(accepted)
            transfer_id = ids[pick % len(ids)]
            if action == "redeliver" and transfer_id not in delivered:
                continue
            _deliver(spot, home, transfer_id)
            if transfer_id not in delivered:
                delivered.add(transfer_id)
                if transfer_id.startswith("s"):
                    wallet += accepted[transfer_id]
                else:
                    cfd += accepted[transfer_id]
        elif action == "settle" and delivered:
            ids = sorted(delivered)
            transfer_id = ids[pick % len(ids)]
            sender = home if transfer_id.startswith("s") else spot
            assert sender.settle(transfer_id).ok
        elif action == "snapshot":
            shards[pick % 2].take_snapshot()
        elif action == "crash":
            shards[pick % 2].crash()
        assert _shard_conserved(spot.core) and _shard_conserved(home.core)
        assert _globally_conserved(spot, home)
        assert (_cfd(home), _wallet(spot)) == (cfd, wallet)

    # Recovery: every transfer still in flight is delivered (again) and settled.
    for shard in shards:
        shard.crash()
        for view in shard.core.transfers_in_flight():
            _deliver(spot, home, view.transfer_id)
            assert shard.settle(view.transfer_id).ok
    moved = sum(accepted.values())
    assert spot.core.stats().transfers_in_flight == home.core.stats().transfers_in_flight == 0
    sent = spot.core.stats().transfers_sent + home.core.stats().transfers_sent
    received = spot.core.stats().transfers_received + home.core.stats().transfers_received
    assert sent == received == moved
    expected_cfd = 1000 * USD - sum(a for t, a in accepted.items() if t.startswith("s"))
    expected_cfd += sum(a for t, a in accepted.items() if t.startswith("c"))
    assert _cfd(home) == expected_cfd
    assert _cfd(home) + _wallet(spot) == 1000 * USD
    assert _globally_conserved(spot, home)
    for shard in shards:
        replayed = Core()
        for record in shard.journal:
            replayed.apply(decode_command(record))
        assert replayed.digest() == shard.core.digest()
