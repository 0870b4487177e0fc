"""Read models the faces share: the overview's scorecards and a project page's data, built from the store."""
