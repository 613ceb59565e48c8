// Starts s3rver (the package has no bin/): node run.js -d DIR -a 127.0.0.1 -p PORT --configure-bucket NAME
require('@20minutes/s3rver/lib/cli.js').parseAsync(process.argv);
