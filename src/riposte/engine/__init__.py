"""The Responses orchestrator: request validation, translation, the stream state machine, the turn loop."""
