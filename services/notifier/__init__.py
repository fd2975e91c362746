"""The notifier: judgements → the right notification, once, on the channels people use."""
