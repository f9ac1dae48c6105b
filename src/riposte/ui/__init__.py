"""The web inspector at /ui: server-rendered pages over the stored responses, their traces,
conversations, files, vector stores and recordings."""
