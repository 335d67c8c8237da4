"""The trading engine service (`cfd engine`): the pure core behind gRPC, durably.

`core` is the deterministic trading state machine. Around it: `sequencer` (the single writer
with group commit), `journal` and `snapshots` (durability and recovery), `prices` (the tick
subscriber and staleness), `streams` (fan-out to the server streams), `recorder` and `history`
(the SQL read model, which the engine only reads), `requests` and `convert` (the protobuf
boundary), `servicer` (the RPCs), `runtime` (the wiring and start-up recovery) and `main` (the
process). `recorder_runtime` and `recorder_main` are the history recorder's process
(`cfd recorder`): it follows the journal, replays it on its own copy of the core and writes
`history`.
"""
