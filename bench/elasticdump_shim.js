// This engine build has no `GET /`, which elasticdump calls to learn the server version. The shim answers from an
// environment variable instead (ES_VERSION, default 9.5.4), so elasticdump runs unmodified otherwise:
//   node -r bench/elasticdump_shim.js bench/.node/node_modules/elasticdump/bin/elasticdump ...
const path = require('path')
const Base = require(path.join(__dirname, '.node/node_modules/elasticdump/lib/transports/__es__/_base.js'))
const version = process.env.ES_VERSION || '9.5.4'
Base.prototype.version = function (prefix, callback) {
  if (this.ESversion) return callback()
  this.ESFullversion = version
  this.ESversion = version.split('.')[0]
  this.ESDistribution = 'elasticsearch'
  this.DistributionVersion = version
  this.IsOpenSearch = false
  this.setSearchBody()
  callback()
}
