#include "search/error.h"
