//! Model → events2 lines, exactly as drbdsetup prints them. (Being written.)
