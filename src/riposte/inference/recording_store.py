"""Recordings on disk: an in-memory index over a directory, lookups by content, and writes."""

from __future__ import annotations

import difflib
import threading
from pathlib import Path
from typing import Any

import orjson

from riposte.errors import ReplayMissError
from riposte.inference.recording import (
    Recording,
    describe_differences,
    loose_match_key,
    match_key,
    normalize_body,
    parse_recording,
    recording_document,
    recording_hash,
)
from riposte.inference.tool_recording import (
    ToolRecording,
    parse_tool_recording,
    tool_match_key,
    tool_recording_document,
)
from riposte.inference.upstream import JSON


class RecordingStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._by_key: dict[str, list[Recording]] = {}
        self._by_loose_key: dict[str, list[Recording]] = {}
        self._all: list[Recording] = []
        self._tool_calls: dict[str, list[ToolRecording]] = {}
        self._lock = threading.Lock()
        self._load()

    def __len__(self) -> int:
        return len(self._all)

    def _load(self) -> None:
        if not self.directory.is_dir():
            return
        # Sorted so that, without a replay scope, the choice among equal requests is deterministic.
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if not isinstance(data, dict):
                continue
            recording = parse_recording(str(path), data)
            if recording is not None:
                self._index(recording)
            elif (tool_call := parse_tool_recording(str(path), data)) is not None:
                self._index_tool_call(tool_call)

    def _index(self, recording: Recording) -> None:
        with self._lock:
            self._all.append(recording)
            self._by_key.setdefault(recording.key, []).append(recording)
            self._by_loose_key.setdefault(recording.loose_key, []).append(recording)

    def _index_tool_call(self, recording: ToolRecording) -> None:
        with self._lock:
            self._tool_calls.setdefault(recording.key, []).append(recording)

    def find_tool_call(self, provider: str, tool_name: str, kwargs: JSON, scope: str | None) -> ToolRecording | None:
        """A recorded tool runtime call (a web search) with these arguments, the scope's own first."""
        candidates = self._tool_calls.get(tool_match_key(provider, tool_name, kwargs), [])
        own = [recording for recording in candidates if scope and recording.test_id == scope]
        best = own or candidates
        return best[0] if best else None

    def tool_call_miss_error(self, provider: str, tool_name: str, kwargs: JSON, scope: str | None) -> ReplayMissError:
        recorded = sorted({orjson.dumps(r.kwargs).decode() for rs in self._tool_calls.values() for r in rs
                           if r.provider == provider and r.tool_name == tool_name})
        known = f" Recorded {provider} {tool_name} calls: {'; '.join(recorded[:5])}." if recorded else ""
        return ReplayMissError(f"No recording of the {provider} {tool_name} call with arguments "
                               f"{orjson.dumps(kwargs).decode()} (scope {scope!r}) in {self.directory}.{known}")

    def write_tool_call(self, *, provider: str, tool_name: str, kwargs: JSON, content: str,
                        scope: str | None) -> Path:
        document = tool_recording_document(test_id=scope, provider=provider, tool_name=tool_name, kwargs=kwargs,
                                           content=content)
        path = self._write_document(recording_hash(tool_match_key(provider, tool_name, kwargs), scope), document)
        recording = parse_tool_recording(str(path), document)
        if recording is not None:
            self._index_tool_call(recording)
        return path

    def by_name(self, name: str, project: str | None) -> Recording | None:
        """A recording by its file name, if `project` may replay it (the inspector's view)."""
        for recording in _replayable_by(self._all, project):
            if Path(recording.path).name == name:
                return recording
        return None

    def model_names(self, endpoint: str) -> list[str]:
        """Upstream models the recordings hold answers from, so replay mode can list them."""
        names = {str(r.body.get("model")) for r in self._all if r.endpoint == endpoint and r.body.get("model")}
        return sorted(names)

    def find(self, endpoint: str, body: JSON, scope: str | None, project: str | None = None) -> Recording | None:
        """The best recording for a request: exact before loose, and the scope's own before others'.
        Only recordings of `project`, or of no project, are candidates."""
        exact = _replayable_by(self._by_key.get(match_key(endpoint, body), []), project)
        loose = _replayable_by(self._by_loose_key.get(loose_match_key(endpoint, body), []), project)
        if scope:
            for candidates in (exact, loose):
                for recording in candidates:
                    if recording.test_id == scope:
                        return recording
        for candidates in (exact, loose):
            if candidates:
                return candidates[0]
        return None

    def miss_error(self, endpoint: str, body: JSON, scope: str | None, project: str | None = None) -> ReplayMissError:
        key = match_key(endpoint, body)
        digest = recording_hash(key, scope)[:16]
        message = f"No recording matches POST {endpoint} (request hash {digest}, scope {scope!r})."
        closest = self._closest(endpoint, key, project)
        if closest is None:
            return ReplayMissError(f"{message} There are no recordings for this endpoint in {self.directory}.")
        differences = describe_differences(normalize_body(body), normalize_body(closest.body))
        return ReplayMissError(
            f"{message} Closest recording: {Path(closest.path).name} (test_id {closest.test_id!r}); "
            f"differs at: {'; '.join(differences)}", closest_recording=Path(closest.path).name,
        )

    def _closest(self, endpoint: str, key: str, project: str | None) -> Recording | None:
        # Never another project's recording: the differences would show its content.
        same_endpoint = [r for r in _replayable_by(self._all, project) if r.endpoint == endpoint]
        if not same_endpoint:
            return None

        def similarity(recording: Recording) -> float:
            return difflib.SequenceMatcher(None, key, recording.key, autojunk=False).quick_ratio()

        return max(same_endpoint, key=similarity)

    def write(
        self, *, endpoint: str, url: str, body: JSON, response_body: Any, is_streaming: bool, type_name: str,
        scope: str | None, project: str | None = None,
    ) -> Path:
        document = recording_document(
            test_id=scope, url=url, endpoint=endpoint, body=body,
            response_body=response_body, is_streaming=is_streaming, type_name=type_name, project=project,
        )
        path = self._write_document(recording_hash(match_key(endpoint, body), scope, project), document)
        recording = parse_recording(str(path), document)
        if recording is not None:
            self._index(recording)
        return path

    def _write_document(self, digest: str, document: JSON) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{digest}.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        temporary.replace(path)
        return path


def _replayable_by(candidates: list[Recording], project: str | None) -> list[Recording]:
    return [recording for recording in candidates if recording.project is None or recording.project == project]
