"""Everything that touches OpenUSD (``pxr``) lives in this subpackage."""
