"""Answers from retrieved passages: extractive by default, written by a chat model when one is set."""
