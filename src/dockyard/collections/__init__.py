"""Collections: an organization's ordered, described lists of tools and workflows."""
