"""The trading engine service (`cfd engine`): the pure core behind gRPC, durably.

`core` is the deterministic trading state machine. Around it: `sequencer` (the single writer
with group commit), `journal` and `snapshots` (durability and recovery), `prices` (the tick
subscriber and staleness), `streams` (fan-out to the server streams), `recorder` and `history`
(the SQL read model), `requests` and `convert` (the protobuf boundary), `servicer` (the RPCs),
`runtime` (the wiring and start-up recovery) and `main` (the process).
"""
