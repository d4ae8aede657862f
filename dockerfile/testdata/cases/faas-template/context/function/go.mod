module handler/function
