// Command caller calls the vulnerable vulnlib.Parse.
package main

import (
	"fmt"
	"os"

	"example.test/vulnlib"
)

func main() {
	fmt.Println(vulnlib.Parse(os.Args[0]))
}
