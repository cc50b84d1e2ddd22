"""Views: the image graph, widgets, narration display."""
