"""Many runs: sweep specs, designs (grid, IsoFLOP, ladder), Ray Tune launch/resume, the runs table."""
