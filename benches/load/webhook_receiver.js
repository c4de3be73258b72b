// A tenant webhook endpoint for the load harness: answers 200 to every POST and counts them; GET /count answers
// the count. Node's HTTP server, so the endpoint is not what limits the measured delivery rate.
const http = require("http");
const port = Number(process.argv[2] || 9000);
let count = 0;
http
  .createServer((req, res) => {
    if (req.method === "GET") {
      res.end(String(count));
      return;
    }
    req.on("data", () => {});
    req.on("end", () => {
      count += 1;
      res.end("ok");
    });
  })
  .listen(port, "127.0.0.1");
