EXTRA_DIST += policies/default.rules
