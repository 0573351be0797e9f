module pion_whep
